"""medrecon: medical image reconstruction with diffusion priors coupled to imaging physics."""

__version__ = "0.1.0"
