"""Build, test and release tooling behind tasks.py, noxfile.py and CI."""
