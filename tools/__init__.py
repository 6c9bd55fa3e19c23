"""Maintainers' tools, outside the installed package: keeping the course notebooks in step
(``python -m tools.authoring``) and exporting a trained run as a shipped model
(``python -m tools.export_pretrained``)."""
