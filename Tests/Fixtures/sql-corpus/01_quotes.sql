-- Strings of every kind, each holding a semicolon or a quote that must not end anything.
SELECT 'semi;colon';
SELECT 'it''s; fine';
SELECT E'it\'s; ok', e'back\\slash;', E'\\';
SELECT E'two\nlines;' = E'two\012lines;';
SELECT "col;umn" FROM (SELECT 1 AS "col;umn") AS "we""ird;";
SELECT U&'d\0061t\+000061;', U&"x;y" FROM (SELECT 1 AS "x;y") s;
SELECT B'101', X'1F', N'n;n';
SELECT 'multi
line; string';
SELECT 'x'
  'continued;';
