-- wrk script: each request carries a new well-formed Keyward token with a valid checksum that
-- no key has (what a guesser sends). Arguments: <token prefix> <seed>. The token is
-- <prefix>p_<16 random base62><16-digit counter><6 base62 chars of CRC32>, as keys/tokens.py.
local bit = require("bit")
local ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if bit.band(c, 1) == 1 then
      c = bit.bxor(bit.rshift(c, 1), 0xEDB88320)
    else
      c = bit.rshift(c, 1)
    end
  end
  crc_table[i] = c
end

local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = bit.bxor(crc_table[bit.band(bit.bxor(c, s:byte(i)), 0xFF)], bit.rshift(c, 8))
  end
  c = bit.bxor(c, 0xFFFFFFFF)
  if c < 0 then c = c + 4294967296 end
  return c
end

local function checksum(body)
  local value = crc32(body)
  local chars = {}
  for i = 6, 1, -1 do
    local index = value % 62
    value = (value - index) / 62
    chars[i] = ALPHABET:sub(index + 1, index + 1)
  end
  return table.concat(chars)
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

local prefix, stem, count = "kw", "", 0
function init(args)
  prefix = args[1] or "kw"
  math.randomseed((tonumber(args[2]) or os.time()) + 7919 * (id or 0))
  local chars = {}
  for i = 1, 16 do
    local index = math.random(1, 62)
    chars[i] = ALPHABET:sub(index, index)
  end
  stem = table.concat(chars)
end

function request()
  count = count + 1
  local body = prefix .. "p_" .. stem .. string.format("%016d", count)
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Authorization"] = "Bearer " .. body .. checksum(body)
  return wrk.format(nil, nil, headers)
end
