-- POST /oauth/token (RFC 8693): the form body is read from the file named by the first
-- script argument (it holds a bench key: not on the command line).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

function init(args)
  local file = assert(io.open(args[1], "r"))
  wrk.body = file:read("*a")
  file:close()
end
