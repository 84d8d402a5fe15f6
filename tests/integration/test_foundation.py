#!/usr/bin/python3
import sys, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *
def test_version():
    r = run_connector(args=("--version",))
    eq(r.rc, 0, "exit")
run(globals())
