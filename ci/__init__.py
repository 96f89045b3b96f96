"""Build, test and release tooling behind tasks/, noxfile.py and CI."""
