-- The original spellings are not kept: nothing to undo.
SELECT 1;
