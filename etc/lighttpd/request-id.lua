-- X-Request-Id on every answer lighttpd gives (issue 15, defect 6): attached with
-- magnet.attract-response-start-to, so it also runs for lighttpd's own answers (errorfile pages
-- for 400/411/414/431/501, 502/503/504 from mod_fastcgi), which never reach the service.
-- The service's own answers already carry one: those are left alone, so there is never a second.
-- An incoming X-Request-Id is echoed when it is valid by the service's rule (fcgi/http.c,
-- request_id_valid: 1 to 64 of A-Z a-z 0-9 - _ .); otherwise a fresh id of 32 lowercase hex
-- digits, the service's own format.
local r = lighty.r
if r.resp_header["X-Request-Id"] ~= nil then
    return 0
end
local id = r.req_header["X-Request-Id"]
if id == nil or #id > 64 or not id:match("^[A-Za-z0-9._%-]+$") then
    local c = lighty.c
    id = string.format("%08x%08x%08x%08x", c.rand() & 0xffffffff, c.rand() & 0xffffffff,
                       c.rand() & 0xffffffff, c.rand() & 0xffffffff)
end
r.resp_header["X-Request-Id"] = id
return 0
