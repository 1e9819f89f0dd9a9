-- The W3C traceparent of the visit's request, so the complaint filed for it
-- later (by the filing worker) continues the same trace.
ALTER TABLE complaint_filings ADD COLUMN traceparent TEXT;
