/* Dollar quotes with and without tags; $ inside identifiers; positional parameters. */
SELECT $$a;b$$, $tag$ $$ ; $tag$, $t_1$;$t_1$;
DO $body$
BEGIN
  PERFORM 1; PERFORM 'x;';
END
$body$;
CREATE TABLE a$b (x$y int, "z$;" int);
INSERT INTO a$b VALUES (1, 2);
SELECT x$y, "z$;" FROM a$b;
PREPARE p(int) AS SELECT $1 + 1;
EXECUTE p(41);
SELECT $é$;$é$;
