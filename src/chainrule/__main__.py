"""``python -m chainrule`` runs the command line."""

from chainrule.cli import entry_point

entry_point()
