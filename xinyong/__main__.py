from xinyong.cli import run

run()
