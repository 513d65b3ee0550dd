from xinyong.cli import app

app(prog_name="xinyong")
