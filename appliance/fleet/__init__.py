"""Fleet mode: devices publish one mood summary a second; a Spark job keeps one story per venue.

Device side: ``publisher`` (rows per second, spooled on disk, delivered to a landing),
``rows`` (the landing format, which the job imports). Importing this package pulls in
neither Spark nor the Azure SDK.
"""
