"""Core: what every station shares and none owns: the user-facing error, the records that travel
between stations, file reading and atomic writing, safe YAML, and how numbers and money are
written.
"""
