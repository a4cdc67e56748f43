"""Task modules: finding ``Mid_<id>.py`` files and keeping up with edits (``registry``),
importing and validating one (``loading``, in a child process: ``inspection``), what a
validated module is (``metadata``) and the book-style adapter (``legacy``)."""
