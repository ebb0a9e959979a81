-- recdb 0007: placeholder (filled in this revision)
SELECT 1;
