"""One module per schema revision, oldest first; revision ids are ``NNNN_topic``."""
