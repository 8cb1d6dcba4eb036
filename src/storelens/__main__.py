"""``python -m storelens`` runs the same command line as the ``storelens`` script, for
environments where the script is not on PATH (a venv not activated, a container)."""

from storelens.cli import main

if __name__ == "__main__":
    main()
