CREATE TABLE t (x int);
CREATE TABLE t_log (x int);
CREATE RULE t_twice AS ON INSERT TO t DO ALSO (INSERT INTO t_log VALUES (new.x); INSERT INTO t_log VALUES (new.x * 10));
INSERT INTO t VALUES (1);
SELECT string_agg(x::text, ',' ORDER BY x) FROM t_log;
SELECT (1 + (2 * 3));
SELECT 1e3, 1.5e-2, .5, 1.;
