"""SME marketing playbook: the tested analysis library behind the stage notebooks."""

__version__ = "0.1.0"
