"""Model catalog, download, verification and (torch-only) export."""
