"""The same hunt in several processes: tasks over partitions of the inputs (``task``), run by local worker processes
(``local``) or as Ray tasks (``ray_executor``). Nothing outside this package imports it unless asked to (``--workers``,
``--ray``); only ``ray_executor`` imports Ray."""
