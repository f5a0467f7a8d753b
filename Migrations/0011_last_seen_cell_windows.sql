-- Receipt cells split by time of day as well: a cell is the receipts of one sent day in one
-- range of conversation ids and one window of the day (bucket = (conversation_id >>
-- bucket_shift) << window_bits | the window of sent_at's UTC time of day, 2^window_bits windows
-- a day). A large group's receipts of a day were one cell, so a single late read in it meant
-- recounting that whole cell (up to half of a day's receipts); now it is one window's share.
--
-- Cells built before this migration have window_bits 0 (one window a day, the old bucket) and
-- stay valid; the next `chatstore jobs last-seen` detects with them once more, then rebuilds
-- them with windows (as when the conversation ids outgrow the bucket width).
ALTER TABLE chat.last_seen_state ADD COLUMN window_bits integer NOT NULL DEFAULT 0 CHECK (window_bits BETWEEN 0 AND 13);
