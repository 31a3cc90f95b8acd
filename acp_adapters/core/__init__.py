"""The framework-neutral core of acp-adapters. It imports no web framework."""
