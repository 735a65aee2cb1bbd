"""``python -m imagematch.cli`` — the same as the ``imagematch`` console script."""

from imagematch.cli import main

main()
