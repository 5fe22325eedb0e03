"""Moved to :mod:`chainrule.cli.graph`; this name stays for code that imported it from here."""

from chainrule.cli.graph import add_graph_parser, cmd_graph, parse_values

__all__ = ["add_graph_parser", "cmd_graph", "parse_values"]
