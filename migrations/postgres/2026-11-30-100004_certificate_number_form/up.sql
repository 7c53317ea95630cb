-- The 不动产登记证明号 is stored in one form (full-width ASCII forms U+FF01-U+FF5E as ASCII, no
-- whitespace), so the unique index sees "闽（2026）..." and "闽(2026)..." as the same number.
-- Rows whose normal form another row already has (or would have) keep their text, for an operator
-- to resolve: rewriting them would break the unique index.
UPDATE forest_mortgages AS fm
SET official_certificate_no = translate(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(fm.official_certificate_no, ' ', ''), chr(9), ''), chr(10), ''), chr(13), ''), chr(12288), ''), '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～', '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~')
WHERE fm.official_certificate_no IS NOT NULL
  AND fm.official_certificate_no <> translate(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(fm.official_certificate_no, ' ', ''), chr(9), ''), chr(10), ''), chr(13), ''), chr(12288), ''), '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～', '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~')
  AND NOT EXISTS (
    SELECT 1 FROM forest_mortgages AS o
    WHERE o.id <> fm.id AND o.official_certificate_no IS NOT NULL
      AND translate(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(o.official_certificate_no, ' ', ''), chr(9), ''), chr(10), ''), chr(13), ''), chr(12288), ''), '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～', '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~') = translate(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(fm.official_certificate_no, ' ', ''), chr(9), ''), chr(10), ''), chr(13), ''), chr(12288), ''), '！＂＃＄％＆＇（）＊＋，－．／０１２３４５６７８９：；＜＝＞？＠ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ［＼］＾＿｀ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ｛｜｝～', '!"#$%&''()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefghijklmnopqrstuvwxyz{|}~')
  );
