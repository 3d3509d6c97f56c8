"""Evidence as the recorder leaves it: block ids, blob names, capture manifests and salvage of staged blocks."""
