"""Transfer protocols (paper section 4.3): arrays in, plain results out. They never open files."""
