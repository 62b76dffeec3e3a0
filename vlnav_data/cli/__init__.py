"""Typer command-line apps. Each command builds one config dataclass and calls one library function."""
