"""Reports: the writer, its data and sections, the answer, charts, HTML."""
