"""The fleet job for ``spark-submit``: the same as ``moodtale fleet ...``, with the master
and ``--conf`` settings spark-submit gives kept::

    spark-submit --master spark://HOST:7077 appliance/fleet/submit.py run \\
        --landing /srv/landing --tables /srv/tables --checkpoint /srv/checkpoint
"""

from __future__ import annotations

import sys

from appliance.cli import main

if __name__ == "__main__":
    sys.exit(main(["fleet", *sys.argv[1:]]))
