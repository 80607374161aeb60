"""`python -m watchd` is the same as the `watchd` command."""

from watchd.cli import run

if __name__ == "__main__":
    run()
