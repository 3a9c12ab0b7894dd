"""Diffusion priors, schedules, samplers and data consistency."""
