"""The files here are learners' layer files for ``chainrule check``, not tests or modules to
import: some raise on import on purpose. Keep pytest's doctest collection out of them."""

collect_ignore_glob = ["*.py"]
