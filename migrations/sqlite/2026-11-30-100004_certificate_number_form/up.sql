-- The 不动产登记证明号 is stored in one form (full-width ASCII forms U+FF01-U+FF5E as ASCII, no
-- whitespace), so the unique index sees "闽（2026）..." and "闽(2026)..." as the same number.
-- Rows whose normal form another row already has (or would have) keep their text, for an operator
-- to resolve: rewriting them would break the unique index.
-- One replacement per statement: SQLite's parser refuses ~100 nested REPLACE calls.
CREATE TEMP TABLE certificate_forms AS
  SELECT id, official_certificate_no AS raw, official_certificate_no AS form
  FROM forest_mortgages WHERE official_certificate_no IS NOT NULL;
UPDATE certificate_forms SET form = REPLACE(form, ' ', '');
UPDATE certificate_forms SET form = REPLACE(form, char(9), '');
UPDATE certificate_forms SET form = REPLACE(form, char(10), '');
UPDATE certificate_forms SET form = REPLACE(form, char(13), '');
UPDATE certificate_forms SET form = REPLACE(form, char(12288), '');
UPDATE certificate_forms SET form = REPLACE(form, '！', '!');
UPDATE certificate_forms SET form = REPLACE(form, '＂', '"');
UPDATE certificate_forms SET form = REPLACE(form, '＃', '#');
UPDATE certificate_forms SET form = REPLACE(form, '＄', '$');
UPDATE certificate_forms SET form = REPLACE(form, '％', '%');
UPDATE certificate_forms SET form = REPLACE(form, '＆', '&');
UPDATE certificate_forms SET form = REPLACE(form, '＇', '''');
UPDATE certificate_forms SET form = REPLACE(form, '（', '(');
UPDATE certificate_forms SET form = REPLACE(form, '）', ')');
UPDATE certificate_forms SET form = REPLACE(form, '＊', '*');
UPDATE certificate_forms SET form = REPLACE(form, '＋', '+');
UPDATE certificate_forms SET form = REPLACE(form, '，', ',');
UPDATE certificate_forms SET form = REPLACE(form, '－', '-');
UPDATE certificate_forms SET form = REPLACE(form, '．', '.');
UPDATE certificate_forms SET form = REPLACE(form, '／', '/');
UPDATE certificate_forms SET form = REPLACE(form, '０', '0');
UPDATE certificate_forms SET form = REPLACE(form, '１', '1');
UPDATE certificate_forms SET form = REPLACE(form, '２', '2');
UPDATE certificate_forms SET form = REPLACE(form, '３', '3');
UPDATE certificate_forms SET form = REPLACE(form, '４', '4');
UPDATE certificate_forms SET form = REPLACE(form, '５', '5');
UPDATE certificate_forms SET form = REPLACE(form, '６', '6');
UPDATE certificate_forms SET form = REPLACE(form, '７', '7');
UPDATE certificate_forms SET form = REPLACE(form, '８', '8');
UPDATE certificate_forms SET form = REPLACE(form, '９', '9');
UPDATE certificate_forms SET form = REPLACE(form, '：', ':');
UPDATE certificate_forms SET form = REPLACE(form, '；', ';');
UPDATE certificate_forms SET form = REPLACE(form, '＜', '<');
UPDATE certificate_forms SET form = REPLACE(form, '＝', '=');
UPDATE certificate_forms SET form = REPLACE(form, '＞', '>');
UPDATE certificate_forms SET form = REPLACE(form, '？', '?');
UPDATE certificate_forms SET form = REPLACE(form, '＠', '@');
UPDATE certificate_forms SET form = REPLACE(form, 'Ａ', 'A');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｂ', 'B');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｃ', 'C');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｄ', 'D');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｅ', 'E');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｆ', 'F');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｇ', 'G');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｈ', 'H');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｉ', 'I');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｊ', 'J');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｋ', 'K');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｌ', 'L');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｍ', 'M');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｎ', 'N');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｏ', 'O');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｐ', 'P');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｑ', 'Q');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｒ', 'R');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｓ', 'S');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｔ', 'T');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｕ', 'U');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｖ', 'V');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｗ', 'W');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｘ', 'X');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｙ', 'Y');
UPDATE certificate_forms SET form = REPLACE(form, 'Ｚ', 'Z');
UPDATE certificate_forms SET form = REPLACE(form, '［', '[');
UPDATE certificate_forms SET form = REPLACE(form, '＼', '\');
UPDATE certificate_forms SET form = REPLACE(form, '］', ']');
UPDATE certificate_forms SET form = REPLACE(form, '＾', '^');
UPDATE certificate_forms SET form = REPLACE(form, '＿', '_');
UPDATE certificate_forms SET form = REPLACE(form, '｀', '`');
UPDATE certificate_forms SET form = REPLACE(form, 'ａ', 'a');
UPDATE certificate_forms SET form = REPLACE(form, 'ｂ', 'b');
UPDATE certificate_forms SET form = REPLACE(form, 'ｃ', 'c');
UPDATE certificate_forms SET form = REPLACE(form, 'ｄ', 'd');
UPDATE certificate_forms SET form = REPLACE(form, 'ｅ', 'e');
UPDATE certificate_forms SET form = REPLACE(form, 'ｆ', 'f');
UPDATE certificate_forms SET form = REPLACE(form, 'ｇ', 'g');
UPDATE certificate_forms SET form = REPLACE(form, 'ｈ', 'h');
UPDATE certificate_forms SET form = REPLACE(form, 'ｉ', 'i');
UPDATE certificate_forms SET form = REPLACE(form, 'ｊ', 'j');
UPDATE certificate_forms SET form = REPLACE(form, 'ｋ', 'k');
UPDATE certificate_forms SET form = REPLACE(form, 'ｌ', 'l');
UPDATE certificate_forms SET form = REPLACE(form, 'ｍ', 'm');
UPDATE certificate_forms SET form = REPLACE(form, 'ｎ', 'n');
UPDATE certificate_forms SET form = REPLACE(form, 'ｏ', 'o');
UPDATE certificate_forms SET form = REPLACE(form, 'ｐ', 'p');
UPDATE certificate_forms SET form = REPLACE(form, 'ｑ', 'q');
UPDATE certificate_forms SET form = REPLACE(form, 'ｒ', 'r');
UPDATE certificate_forms SET form = REPLACE(form, 'ｓ', 's');
UPDATE certificate_forms SET form = REPLACE(form, 'ｔ', 't');
UPDATE certificate_forms SET form = REPLACE(form, 'ｕ', 'u');
UPDATE certificate_forms SET form = REPLACE(form, 'ｖ', 'v');
UPDATE certificate_forms SET form = REPLACE(form, 'ｗ', 'w');
UPDATE certificate_forms SET form = REPLACE(form, 'ｘ', 'x');
UPDATE certificate_forms SET form = REPLACE(form, 'ｙ', 'y');
UPDATE certificate_forms SET form = REPLACE(form, 'ｚ', 'z');
UPDATE certificate_forms SET form = REPLACE(form, '｛', '{');
UPDATE certificate_forms SET form = REPLACE(form, '｜', '|');
UPDATE certificate_forms SET form = REPLACE(form, '｝', '}');
UPDATE certificate_forms SET form = REPLACE(form, '～', '~');
UPDATE forest_mortgages
SET official_certificate_no = (SELECT c.form FROM certificate_forms AS c WHERE c.id = forest_mortgages.id)
WHERE id IN (
  SELECT c.id FROM certificate_forms AS c
  WHERE c.form <> c.raw
    AND NOT EXISTS (SELECT 1 FROM certificate_forms AS o WHERE o.id <> c.id AND o.form = c.form)
);
DROP TABLE certificate_forms;
