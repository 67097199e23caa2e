"""The meetups worker: the Meetup aggregate (creation, RSVPs, images, attendees following the room,
moves when a poll closes) and the replica of its polls that alerts come from."""
