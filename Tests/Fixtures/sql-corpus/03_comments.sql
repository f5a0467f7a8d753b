-- a line comment; with a semicolon
/* a block comment; */ SELECT 1 /* inside; */ + 1;
/* nested /* comments; */ still in the comment; */ SELECT 3;
SELECT 4 -- trailing comment; here
;
SELECT '--not a comment;', '/* nor this; */';
SELECT 6 /* multi
line; */;
-- a comment at the end; without a statement
