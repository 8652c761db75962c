-- The per-user bounds of a new upload (USER_MAX_OPEN_UPLOADS, USER_MAX_UPLOADS) checked inside the INSERT itself,
-- in one round trip: called for the new row's status, it takes the user's advisory lock (held until the inserting
-- statement commits, so a user's racing creations take turns), then counts with a snapshot of its own, taken after
-- the lock (a VOLATILE function's queries each see what committed before they started), so it sees every upload
-- the creations before it inserted. Over a bound it raises SQLSTATE FRL01 with "open=<n>" or "kept=<n>" and
-- nothing is inserted. p_open: the statuses that count as open (src/uploads/lifecycle.ts decides).
CREATE OR REPLACE FUNCTION freight_admit_upload(
  p_user text,
  p_now timestamptz,
  p_open_limit integer,
  p_kept_limit integer,
  p_open upload_status[],
  p_lock_class integer,
  p_status upload_status
) RETURNS upload_status
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_open integer;
  v_kept integer;
BEGIN
  PERFORM pg_advisory_xact_lock(p_lock_class, hashtext(p_user));
  SELECT (count(*) FILTER (WHERE status = ANY (p_open) AND (expires_at IS NULL OR expires_at > p_now)))::integer,
         count(*)::integer
    INTO v_open, v_kept
    FROM file_uploads
   WHERE user_id = p_user;
  IF p_open_limit > 0 AND v_open >= p_open_limit THEN
    RAISE EXCEPTION USING ERRCODE = 'FRL01', MESSAGE = 'open=' || v_open;
  END IF;
  IF p_kept_limit > 0 AND v_kept >= p_kept_limit THEN
    RAISE EXCEPTION USING ERRCODE = 'FRL01', MESSAGE = 'kept=' || v_kept;
  END IF;
  RETURN p_status;
END;
$$;
