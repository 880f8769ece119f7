"""``python -m autodock.lab`` runs the lab group without the main CLI."""

from .cli import lab

lab(prog_name="autodock lab")
