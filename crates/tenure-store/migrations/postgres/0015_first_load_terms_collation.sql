-- A first load's staged search terms become the term table at its end (the staging table
-- takes its place), so they sort as the term table's do: byte by byte.
ALTER TABLE first_load_terms ALTER COLUMN term TYPE TEXT COLLATE "C";
