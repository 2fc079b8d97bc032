"""The same hunt in several processes: tasks over partitions of the inputs (``task``), run by local worker processes
(``local``), and later by Ray. Nothing outside this package imports it unless asked to (``--workers``)."""
