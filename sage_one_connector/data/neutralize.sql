-- A neutralized copy (staging, support) must never post to the real Sage
-- business: forget the tokens and pending authorizations, and mark every
-- connection as not connected (crons are deactivated by base).
DELETE FROM sage_connection_token;
DELETE FROM sage_oauth_state;
UPDATE sage_connection
   SET state = 'not_connected';
