-- Every pass of the overdue sweeper and the filing worker reads only the work
-- still to do, in an order it can resume from, so each makes progress through
-- a backlog of any size.

-- When the overdue sweeper next has a notice to raise for the elder: the due
-- instant of the first visit period since the anchor not yet reported missed,
-- or NULL when none will be (the cap of missed periods is reached) until a
-- visit moves the anchor. Registration, a visit and a change of details set it
-- to the next due date; the sweeper moves it past the periods it raised, so an
-- elder already alerted is not read again before their next period is due.
ALTER TABLE elders ADD COLUMN next_notice_at INTEGER;
UPDATE elders SET next_notice_at = next_visit_due_at;
CREATE INDEX elders_by_notice_due ON elders (next_notice_at, id) WHERE consents_to_visits = 1;

-- Pending filings in the order the worker goes through them: by the time of
-- their next attempt, then by visit.
DROP INDEX complaint_filings_due;
CREATE INDEX complaint_filings_due ON complaint_filings (status, next_attempt_at, visit_id);
