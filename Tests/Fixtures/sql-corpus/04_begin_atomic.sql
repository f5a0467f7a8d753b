CREATE FUNCTION add_one(i int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT i + 1;
END;
create or replace function pick(i int) returns text language sql
begin atomic
  select case when i > 0 then 'pos;' else 'neg;' end;
end;
CREATE TABLE log (x int);
CREATE PROCEDURE log_two() LANGUAGE sql
BEGIN ATOMIC
  INSERT INTO log VALUES (1);
  INSERT INTO log VALUES (2);
END;
CALL log_two();
SELECT add_one(41), pick(1), pick(-1), (SELECT count(*) FROM log);
CREATE FUNCTION plain() RETURNS int LANGUAGE sql RETURN 7;
SELECT plain();
BEGIN;
SELECT 'inside a transaction';
END;
