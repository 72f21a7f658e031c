// Nothing: this package only pulls in the plugins.
