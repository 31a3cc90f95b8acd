"""What builds the documentation site besides mkdocs.yml: mkdocs hooks and a Griffe extension."""
