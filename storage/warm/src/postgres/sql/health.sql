-- Whether the server answers on this connection.
SELECT 1
