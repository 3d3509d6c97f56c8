"""Regenerate the committed JSON Schemas of every contract."""

from verbatim.contracts import write_schemas

if __name__ == "__main__":
    for path in write_schemas():
        print(path)
