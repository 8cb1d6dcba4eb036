"""Sample data shipped with the package: store layouts for the demo and the tests."""
