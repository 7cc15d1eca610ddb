"""The API's JSON parser: any body that is not acceptable JSON is a 400, never a 500."""

from rest_framework import exceptions, parsers

TOO_DEEP = "JSON parse error - the body is nested too deeply."


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser; JSON nested deeper than Python's recursion limit is a 400 too."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(TOO_DEEP) from None
