"""vlnav-data: can frozen vision-language embeddings alone guide a robot?

The package imports nothing heavy at import time; see ARCHITECTURE.md for the layout.
"""

__version__ = "0.1.0"
